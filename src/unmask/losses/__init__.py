"""unmask.losses"""
