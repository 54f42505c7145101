"""The LLM side: the OpenAI-compatible client, reply parsing and prompt building."""
