"""Marks this metric folder as package data; evaluate.load reads only the script beside it."""
