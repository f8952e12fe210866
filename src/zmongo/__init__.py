"""zmongo: persistent Python objects and Zope containers in MongoDB."""
