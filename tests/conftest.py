pytest_plugins = ['zmongo.testing']
