/**
 * Attribute of a span whose starter already drew it at the root ratio (`rootSampled()`): the
 * sampler keeps it without drawing again (sampler.ts). 1 means keep, as in OpenTracing.
 */
export const SAMPLING_PRIORITY = 'sampling.priority';
