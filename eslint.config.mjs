// Lint for the TypeScript sources: eslint's and typescript-eslint's recommended rules, without
// type information (type errors are the compiler's job, in `build`), so lint stays fast.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/.out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: globals.node } },
  // no-useless-assignment: off, because what it reports here are initial values that a `finally`
  // reads when the `try` throws before the assignment, or that keep a loop's variable typed
  { rules: { 'no-useless-assignment': 'off' } },
  // `_`-prefixed names are the convention for parameters a signature needs but the body does not
  // (express's four-argument error handler, for one)
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
);
