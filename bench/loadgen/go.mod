module peertracker/bench/loadgen

go 1.22
