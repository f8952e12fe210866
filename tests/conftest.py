pytest_plugins = ['zmongo.testing', 'pytester']
