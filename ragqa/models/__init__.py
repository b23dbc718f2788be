"""The models: the Embedder and Generator contracts (embed.py, generator.py), their backends
(torch, ONNX, llama.cpp) and where the bundled models' files are."""
