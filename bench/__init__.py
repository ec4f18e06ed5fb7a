"""Pastra's benchmarks (`make bench`): direct vs bare relay vs Pastra against one emulator."""
