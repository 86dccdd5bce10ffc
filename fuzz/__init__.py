"""Coverage-guided fuzzing (atheris) of the parsers that read outside input: `make fuzz`."""
