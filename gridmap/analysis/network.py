"""Walking distances along a street network (networkx Dijkstra).

A household and a facility join the network at their nearest node; the distance is the
straight hop to that node plus the shortest path between the nodes. All facilities of a type
are sources of one Dijkstra run (a virtual source linked to each facility's node with its hop
length), cut off at the largest distance asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray
from pyproj import CRS
from scipy.sparse.csgraph import connected_components, dijkstra
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
        hop, idx = self.snap(x, y, crs)
        return hop, self.node_ids[idx]

    def snap(self, x: NDArray, y: NDArray, crs: CRS) -> tuple[NDArray, NDArray[np.intp]]:
        """(straight hop in metres, position in ``node_ids``) of each point's nearest node."""
        from pyproj import Transformer

        to_m = Transformer.from_crs(4326, crs, always_xy=True)
        nx_, ny_ = to_m.transform(self.node_xy_ll[:, 0], self.node_xy_ll[:, 1])
        hop, idx = cKDTree(np.column_stack([nx_, ny_])).query(np.column_stack([x, y]), k=1)
        return hop, np.asarray(idx, dtype=np.intp)

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """The network as a sparse matrix over ``node_ids`` positions (metres), one entry per
        edge, to be read as undirected."""
        pos = pd.Series(np.arange(len(self.node_ids)), index=self.node_ids)
        u, v, w = [], [], []
        for a, b, length in self.graph.edges(data="length"):
            u.append(a)
            v.append(b)
            w.append(length)
        i = pos.reindex(u).to_numpy()
        j = pos.reindex(v).to_numpy()
        ok = ~(np.isnan(i) | np.isnan(j))
        i, j = i[ok].astype(np.int64), j[ok].astype(np.int64)
        lengths = np.maximum(np.asarray(w, dtype=float)[ok], 1e-9)  # 0 would mean no edge
        n = len(self.node_ids)
        keep = i != j  # a loop never shortens a path
        # one direction per edge (nx.Graph holds each once): read as undirected
        return sp.coo_matrix((lengths[keep], (i[keep], j[keep])), shape=(n, n)).tocsr()

    @cached_property
    def pieces(self) -> NDArray[np.int64]:
        """The connected piece of each node (0 is the largest piece, then by size)."""
        _, labels = connected_components(self.matrix, directed=False)
        sizes = np.bincount(labels)
        rank = np.empty_like(sizes)
        rank[np.argsort(-sizes, kind="stable")] = np.arange(len(sizes))
        return rank[labels].astype(np.int64)

    def distances_from(self, sources: NDArray[np.intp], *, cutoff: float
                       ) -> sp.csr_matrix:
        """Shortest path lengths from each source node position to every node within
        *cutoff* metres, as a sparse (sources × nodes) matrix; a source reaches itself at
        1e-9 m (a stored zero would be no entry)."""
        rows, cols, vals = [], [], []
        chunk = max(1, 2_000_000 // max(len(self.node_ids), 1))
        for start in range(0, len(sources), chunk):
            part = sources[start:start + chunk]
            dist = dijkstra(self.matrix, directed=False, indices=part, limit=cutoff)
            r, c = np.nonzero(np.isfinite(dist))
            rows.append(r + start)
            cols.append(c)
            vals.append(np.maximum(dist[r, c], 1e-9))
        if not rows:
            return sp.csr_matrix((len(sources), len(self.node_ids)))
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                     np.concatenate(cols))),
                             shape=(len(sources), len(self.node_ids)))

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


@dataclass
class NetworkReport:
    """How the walking network hangs together, and who hangs on its small pieces.

    ``table`` has a row per piece (0 the largest): ``nodes``, ``households``,
    ``residents`` and ``facilities`` attached to it (each joins at its nearest node)."""

    table: pd.DataFrame

    @property
    def n_pieces(self) -> int:
        return len(self.table)

    def share_off_main(self, column: str) -> float:
        """Share of *column* (households, residents, facilities) attached to any piece but
        the largest."""
        total = float(self.table[column].sum())
        return float(self.table[column].iloc[1:].sum()) / total if total else 0.0

    def __str__(self) -> str:
        main = self.table.iloc[0]
        return (f"walking network: {self.n_pieces} connected piece(s); the largest has "
                f"{int(main['nodes']):,} of {int(self.table['nodes'].sum()):,} nodes; "
                f"attached to the smaller pieces: "
                f"{self.share_off_main('households'):.1%} of households, "
                f"{self.share_off_main('facilities'):.1%} of facilities")


def network_report(network: WalkNetwork, households: gpd.GeoDataFrame,
                   facilities: gpd.GeoDataFrame, *, crs: CRS) -> NetworkReport:
    """The connected pieces of *network* and what is attached to each (in *crs*, metres)."""
    pieces = network.pieces
    n = int(pieces.max()) + 1 if len(pieces) else 0
    hh = households.geometry.to_crs(crs)
    fac = facilities.geometry.to_crs(crs)
    _, h_pos = network.snap(hh.x.to_numpy(), hh.y.to_numpy(), crs)
    _, f_pos = network.snap(fac.x.to_numpy(), fac.y.to_numpy(), crs) if len(fac) \
        else (None, np.zeros(0, dtype=np.intp))
    residents = (pd.to_numeric(households["residents"], errors="coerce").fillna(0).to_numpy()
                 if "residents" in households else np.ones(len(households)))
    table = pd.DataFrame({
        "piece": np.arange(n),
        "nodes": np.bincount(pieces, minlength=n),
        "households": np.bincount(pieces[h_pos], minlength=n),
        "residents": np.bincount(pieces[h_pos], weights=residents, minlength=n).astype(
            np.int64),
        "facilities": np.bincount(pieces[f_pos], minlength=n)})
    return NetworkReport(table)
