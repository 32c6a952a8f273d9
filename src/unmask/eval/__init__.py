"""unmask.eval"""
