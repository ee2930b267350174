"""Every operator command that needs the registry finds the `ywm dev` deployment by itself."""

from __future__ import annotations

from ywmessaging.__main__ import COMMAND_MODULES
from ywmessaging.commands.devdeploy import DEV_AWARE_COMMANDS

# Commands that never read the dev deployment: they make it, serve production, print the
# settings table, run a simulator alone, or talk to Stripe only.
NOT_DEV_AWARE = {"dev", "serve", "env", "carrier_sim", "stripe_sim", "pco_sim", "billing"}


def test_every_registry_command_is_dev_aware() -> None:
    modules = set(COMMAND_MODULES)
    assert modules - NOT_DEV_AWARE == set(DEV_AWARE_COMMANDS), (
        "classify the new command: add it to DEV_AWARE_COMMANDS or to NOT_DEV_AWARE here")
