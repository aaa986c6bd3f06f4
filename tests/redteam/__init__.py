"""Red-team corpus: hostile model files and the tests that run them through the sandbox."""
