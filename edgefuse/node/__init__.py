"""The live node: a pipeline run on a transport (``edgefuse node``), and ``edgefuse play``.

See :mod:`edgefuse.node.node` (threads, lifecycle, clock), :mod:`edgefuse.node.inputs` (bounded queues and
the drop policy), :mod:`edgefuse.node.diagnostics` (``/diagnostics``) and :mod:`edgefuse.node.play`.
"""

from edgefuse.node.lifecycle import Lifecycle, TransitionEvent
from edgefuse.node.node import EdgefuseNode, NodeOptions
from edgefuse.node.play import Player

__all__ = ["EdgefuseNode", "Lifecycle", "NodeOptions", "Player", "TransitionEvent"]
