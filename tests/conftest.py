pytest_plugins = ["tests.fakekube.fixtures"]
