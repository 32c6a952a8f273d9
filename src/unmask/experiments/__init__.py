"""unmask.experiments"""
