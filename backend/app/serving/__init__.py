"""Serving: turning validated OpenAI requests into engine calls and engine outputs into responses."""
