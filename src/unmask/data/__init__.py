"""unmask.data"""
