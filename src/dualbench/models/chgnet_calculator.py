"""CHGNet's ASE calculator, computing the stress only for a call that needs it.

``CHGNetCalculator`` runs the task ``efsm`` on every call. Its stress is a second backward
pass through the graph: on 128 W atoms on one core a force-only call (``ef``) takes 0.58 of
the time of an ``efsm`` one, with bitwise the same energy and forces
(``benchmarks/md_stress_on_demand.py``). NVT MD needs the stress only on the steps it keeps
as snapshots; :mod:`dualbench.md.driver` says which through :attr:`stress_wanted`.
"""

from __future__ import annotations

from chgnet.model.dynamics import CHGNetCalculator


class StressOnDemandCalculator(CHGNetCalculator):
    """A ``CHGNetCalculator`` whose calls compute the stress (and magnetic moments) only
    while :attr:`stress_wanted` is true or when ASE asks for them by name
    (``atoms.get_stress()``); energy and forces always."""

    #: True (the default, CHGNet's own behaviour): every call computes everything.
    stress_wanted: bool = True

    def calculate(self, atoms=None, properties=None, system_changes=None, task=None) -> None:
        if task is None:
            task = self.task_for(properties)
        super().calculate(atoms, properties, system_changes, task=task)

    def task_for(self, properties) -> str:
        """CHGNet's task string for a call asking for ``properties`` (None: all)."""
        if self.stress_wanted or properties is None:
            return "efsm"
        wanted = set(properties)
        return "ef" + ("s" if "stress" in wanted else "") + ("m" if "magmoms" in wanted else "")
