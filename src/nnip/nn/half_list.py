"""Messages along both directions of each pair of a half list, from one filter per pair.

A continuous filter that depends on the distance only, W(r_ij) = W(r_ji), is the same for
the two directions of a pair, so a model can evaluate it on a half list (each unordered pair
once, see ``Edges.half``) and send every message both ways:

    out_i += W_p * h_j    and    out_j += W_p * h_i        for each pair p = (i, j)

This halves the work of the filter network, which is most of SchNet's per-edge cost.
The sources (where a message comes from) and targets (where it goes) of all 2P directed
messages are the pair ends laid end to end: the P messages j -> i first, then the P
messages i -> j, so message k and message P + k share pair k's filter.
"""

from __future__ import annotations

import torch

from nnip.nn.scatter import scatter_sum

__all__ = ["both_directions", "pair_messages", "pair_convolution"]


def both_directions(center: torch.Tensor, neighbor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources and targets (2P,) of the messages of P pairs (i = center, j = neighbor): j -> i, then i -> j."""
    return torch.cat([neighbor, center]), torch.cat([center, neighbor])


def pair_messages(at_sources: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Messages W_p * h_source of both directions. Shapes: (2P, F), (P, F) -> (2P, F)."""
    pairs, features = weights.shape
    return (at_sources.view(2, pairs, features) * weights).view(2 * pairs, features)  # W broadcast, not copied


def pair_convolution(h: torch.Tensor, weights: torch.Tensor, sources: torch.Tensor,
                     targets: torch.Tensor) -> torch.Tensor:
    """sum over the messages reaching each atom of W_p * h_source.

    Shapes: h (N, F), weights (P, F), sources and targets (2P,) from :func:`both_directions` -> (N, F).
    """
    return scatter_sum(pair_messages(h.index_select(0, sources), weights), targets, h.shape[0])
