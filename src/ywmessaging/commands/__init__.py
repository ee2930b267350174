"""One module per `ywm` command group; see `__main__.COMMAND_MODULES`."""
