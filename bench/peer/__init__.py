"""ragqa against LlamaIndex on the same job (python -m bench.peer.bench_peer)."""
