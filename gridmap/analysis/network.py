"""Walking distances along a street network (networkx Dijkstra).

A household and a facility join the network at their nearest node; the distance is the
straight hop to that node plus the shortest path between the nodes. All facilities of a type
are sources of one Dijkstra run (a virtual source linked to each facility's node with its hop
length), cut off at the largest distance asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pyproj import CRS
from scipy.spatial import cKDTree

_SOURCE = "__facilities__"


@dataclass
class WalkNetwork:
    """Nodes (``id``, point geometry) and edges (``u``, ``v``, ``length`` in metres)."""

    graph: nx.Graph
    node_ids: NDArray[np.int64]
    node_xy_ll: NDArray[np.float64]  # lon/lat of the nodes, in node_ids order

    @classmethod
    def from_frames(cls, nodes: gpd.GeoDataFrame, edges: pd.DataFrame) -> WalkNetwork:
        missing = [c for c in ("u", "v", "length") if c not in edges]
        if missing or "id" not in nodes:
            raise ValueError("a walking network needs nodes with 'id' and edges with 'u', 'v' "
                             f"and 'length' (missing: {', '.join(missing) or 'id'})")
        if edges.empty or nodes.empty:
            raise ValueError("the walking network is empty: no walkable streets were found")
        graph = nx.Graph()
        lengths = edges["length"].to_numpy(dtype=float)
        if (lengths < 0).any() or not np.isfinite(lengths).all():
            raise ValueError("edge lengths must be finite and non-negative metres")
        graph.add_weighted_edges_from(zip(edges["u"].to_numpy(), edges["v"].to_numpy(),
                                          lengths, strict=True), weight="length")
        nodes = nodes.to_crs(4326) if nodes.crs is not None else nodes
        keep = nodes["id"].isin(graph.nodes)
        ids = nodes.loc[keep, "id"].to_numpy(dtype=np.int64)
        xy = np.column_stack([nodes.loc[keep].geometry.x, nodes.loc[keep].geometry.y])
        return cls(graph, ids, xy)

    def _snap(self, x: NDArray, y: NDArray, crs: CRS) -> tuple[NDArray, NDArray]:
        from pyproj import Transformer

        to_m = Transformer.from_crs(4326, crs, always_xy=True)
        nx_, ny_ = to_m.transform(self.node_xy_ll[:, 0], self.node_xy_ll[:, 1])
        hop, idx = cKDTree(np.column_stack([nx_, ny_])).query(np.column_stack([x, y]), k=1)
        return hop, self.node_ids[idx]

    def distances(self, hx: NDArray, hy: NDArray, fx: NDArray, fy: NDArray, *, crs: CRS,
                  cutoff: float) -> NDArray[np.float64]:
        """Walking distance (m) from each household to its nearest facility; ``inf`` beyond
        *cutoff* or when the facilities are not reachable."""
        out = np.full(len(hx), np.inf)
        if not len(fx) or not len(hx):
            return out
        f_hop, f_node = self._snap(fx, fy, crs)
        h_hop, h_node = self._snap(hx, hy, crs)
        graph = self.graph.copy(as_view=False)
        best: dict[int, float] = {}
        for node, hop in zip(f_node.tolist(), f_hop.tolist(), strict=True):
            best[node] = min(best.get(node, np.inf), hop)
        graph.add_weighted_edges_from(((_SOURCE, n, h) for n, h in best.items()),
                                      weight="length")
        reach = nx.single_source_dijkstra_path_length(graph, _SOURCE, cutoff=cutoff,
                                                      weight="length")
        node_dist = pd.Series(reach, dtype=float)
        out = h_hop + node_dist.reindex(h_node).to_numpy(dtype=float, na_value=np.inf)
        return np.where(out <= cutoff, out, np.inf)
