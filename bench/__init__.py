"""Benchmark of the chat server against its peers; run with `make bench` (see __main__)."""
