"""Local LLM chat backend: an OpenAI-compatible API over Hugging Face Transformers."""
