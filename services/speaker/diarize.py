"""Who spoke when: speech regions cut into short overlapping windows, one GE2E embedding per
window, windows clustered by scikit-learn's agglomerative clustering (Ward linkage on the unit
embeddings), then each 10 ms of speech labelled by the nearest window.

Unless the caller says how many speakers there are, the count is estimated: one more speaker
is accepted only while every pair of cluster centroids stays less alike than one speaker's
own windows usually are (``same_speaker_cosine``) and the split separates the windows better
(silhouette). GE2E's embeddings are non-negative, so even different voices have cosines well
above zero: the threshold sits high.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import silhouette_score

RATE_HZ = 16_000
FRAME_S = 0.01


@dataclass(frozen=True)
class DiarizeOptions:
    window_s: float = 1.5
    step_s: float = 0.75
    min_window_s: float = 0.5  # a shorter speech region is labelled by its neighbours
    same_speaker_cosine: float = 0.9  # centroids this alike are one speaker
    min_silhouette_gain: float = 0.02  # a further speaker must separate windows this much better
    max_speakers: int = 8
    num_speakers: int | None = None  # known in advance: cluster into exactly this many


@dataclass(frozen=True)
class Turn:
    start_s: float
    end_s: float
    speaker: int


def windows(
    regions: list[tuple[float, float]], options: DiarizeOptions
) -> list[tuple[float, float]]:
    """(start_s, end_s) of the embedding windows covering every region long enough."""
    out = []
    for start, end in regions:
        if end - start < options.min_window_s:
            continue
        t = start
        while True:
            stop = min(t + options.window_s, end)
            out.append((max(start, stop - options.window_s), stop))
            if stop >= end:
                break
            t += options.step_s
    return out


def _ward(embeddings: np.ndarray, count: int) -> np.ndarray:
    return AgglomerativeClustering(n_clusters=count, linkage="ward").fit_predict(embeddings)


def _max_centroid_cosine(embeddings: np.ndarray, labels: np.ndarray) -> float:
    centroids = np.stack([embeddings[labels == k].mean(axis=0) for k in np.unique(labels)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    similarity = centroids @ centroids.T
    return float(similarity[np.triu_indices(len(centroids), 1)].max())


def estimate(embeddings: np.ndarray, options: DiarizeOptions) -> np.ndarray:
    """Labels for the speaker count the windows support (see the module's docstring)."""
    best = np.zeros(len(embeddings), dtype=int)
    best_score = -1.0
    for count in range(2, min(options.max_speakers, len(embeddings) - 1) + 1):
        labels = _ward(embeddings, count)
        if _max_centroid_cosine(embeddings, labels) >= options.same_speaker_cosine:
            break
        score = float(silhouette_score(embeddings, labels, metric="cosine"))
        if count > 2 and score < best_score + options.min_silhouette_gain:
            break
        best, best_score = labels, score
    return best


def cluster(embeddings: np.ndarray, options: DiarizeOptions) -> np.ndarray:
    """A cluster index per embedding, numbered in order of first appearance."""
    if len(embeddings) < 3:
        raw = np.zeros(len(embeddings), dtype=int)
    elif options.num_speakers is not None:
        raw = _ward(embeddings, min(options.num_speakers, len(embeddings)))
    else:
        raw = estimate(embeddings, options)
    order = {label: i for i, label in enumerate(dict.fromkeys(raw.tolist()))}
    return np.array([order[label] for label in raw.tolist()], dtype=int)


def label_frames(
    regions: list[tuple[float, float]],
    spans: list[tuple[float, float]],
    labels: np.ndarray,
    duration_s: float,
) -> np.ndarray:
    """Speaker index of each 10 ms frame (-1: no speech): the nearest window centre's label."""
    frames = np.full(int(np.ceil(duration_s / FRAME_S)), -1, dtype=int)
    if not spans:
        return frames
    centres = np.array([(a + b) / 2 for a, b in spans])
    for start, end in regions:
        first, last = int(start / FRAME_S), min(len(frames), int(np.ceil(end / FRAME_S)))
        times = (np.arange(first, last) + 0.5) * FRAME_S
        nearest = np.abs(times[:, None] - centres[None, :]).argmin(axis=1)
        frames[first:last] = labels[nearest]
    return frames


def turns(frames: np.ndarray) -> list[Turn]:
    """Runs of one speaker's frames as turns."""
    out: list[Turn] = []
    edges = np.flatnonzero(np.diff(frames)) + 1
    for a, b in zip(np.r_[0, edges], np.r_[edges, len(frames)], strict=True):
        if frames[a] >= 0:
            out.append(Turn(round(a * FRAME_S, 2), round(b * FRAME_S, 2), int(frames[a])))
    return out
