"""The network, its file format (safetensors + card), where models live, foreign models, camera profiles."""
