"""Training toolkit: dataset loaders, target builders, curriculum, trainer and evaluation runners."""
