"""unmask.data.sources"""
