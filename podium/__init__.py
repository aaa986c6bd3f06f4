"""Podium: grading service for classroom CNN mini-challenges."""
