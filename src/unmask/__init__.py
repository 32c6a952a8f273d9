"""unmask: recognise the emotion a person really feels behind a masked facial expression."""

__version__ = "0.1.0"
