"""Entry points of every group reach the registries: a space, a device and a predictor from a
package that is not hwnas; a built-in name is never taken over; a broken plugin is a warning."""

from __future__ import annotations

import importlib
import logging

import pytest
from hwnas.core.registry import Registry

from tests.fakes import install_plugin

PLUGIN = '''
class Thing:
    hwnas_meta = {"flavour": "plugin"}
    def __init__(self, *a, **kw):
        self.args = a

def space_factory():
    return Thing()

space_factory.hwnas_meta = {"flavour": "plugin"}
'''


@pytest.fixture()
def site(tmp_path, monkeypatch):
    install_plugin(tmp_path, "hwnas_plugin_things", PLUGIN,
                   "[hwnas.spaces]\ntiny = hwnas_plugin_things:space_factory\nnb201 = hwnas_plugin_things:space_factory\n\n"
                   "[hwnas.devices]\nfpga-sim = hwnas_plugin_things:Thing\nbroken = hwnas_plugin_nowhere:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


def test_a_group_fills_its_registry_on_first_lookup(site):
    reg = Registry("space", shared=False)
    reg.add("nb201", lambda: "built-in")
    assert "tiny" in reg and reg.names() == ["nb201", "tiny"]
    assert reg["nb201"]() == "built-in"  # a plugin cannot take a built-in's name
    assert reg.meta("tiny") == {"flavour": "plugin"}


def test_a_broken_plugin_is_one_warning_and_the_rest_load(site, caplog):
    reg = Registry("device", shared=False)
    with caplog.at_level(logging.WARNING):
        assert reg.names() == ["fpga-sim"]
    (msg,) = [r.getMessage() for r in caplog.records]
    assert "device plugin 'broken'" in msg and "hwnas_plugin_nowhere" in msg


def test_a_layer_registers_plugins_its_own_way(site):
    seen: dict = {}
    reg = Registry("device", plugin_adder=lambda name, obj, **meta: seen.update({name: meta}), shared=False)
    reg.load()
    assert seen == {"fpga-sim": {"flavour": "plugin"}}


def test_a_device_plugin_with_metadata_register_device_does_not_take_is_skipped(site, caplog):
    from hwnas.devices.registry import register_device

    reg = Registry("device", plugin_adder=lambda name, obj, **meta: register_device(name, **meta)(obj), shared=False)
    with caplog.at_level(logging.WARNING):
        reg.load()
    assert any("'fpga-sim'" in r.getMessage() and "flavour" in r.getMessage() for r in caplog.records)
    assert "fpga-sim" not in dict.keys(reg)
