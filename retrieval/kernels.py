"""The compiled inner loops of the BM25 index (numba, cached on disk, no interpreter lock held).

Weights follow rank-bm25's formulas (variant codes: 0 Okapi, 1 Plus, 2 L). ``_search_kernel`` sums a
question's rows into a score buffer, rarest terms first, stops visiting whole rows once the terms left cannot
lift an unseen passage into the top results (MaxScore), probes the remaining rows only for passages still in
contention, and re-scores the final candidates exactly in float64. Heavy questions (rows that add up to a third
of the passages, or that touched a sixteenth of them before MaxScore could stop) are added up without the list of
passages touched; the contenders are then found by reading the score buffer in chunks.
"""

from pathlib import Path

from retrieval.numba_cache import choose_cache_dir

choose_cache_dir(Path(__file__).parent)

import numba  # noqa: E402  (after the cache folder is chosen)
import numpy as np  # noqa: E402


@numba.njit(cache=True, nogil=True)
def _weight(code, idf, tf, dl, avgdl, k1, b, delta):
    """rank-bm25's per-term contribution for a passage containing the term ``tf`` times, minus
    the part every passage gets (BM25Plus adds ``idf * delta`` even where the term is absent)."""
    if code == 0:
        return idf * (tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avgdl)))
    if code == 1:
        return idf * (delta + (tf * (k1 + 1.0)) / (k1 * (1.0 - b + b * dl / avgdl) + tf)) - idf * delta
    ctd = tf / (1.0 - b + b * dl / avgdl)
    return idf * tf * (k1 + 1.0) * (ctd + delta) / (k1 + ctd + delta)


@numba.njit(cache=True, nogil=True)
def _postings_weights(code, term_ptr, post_doc, post_tf, idf, doc_len, avgdl, k1, b, delta, out_w, out_ub):
    for t in range(len(term_ptr) - 1):
        ub = 0.0
        for p in range(term_ptr[t], term_ptr[t + 1]):
            w = _weight(code, idf[t], float(post_tf[p]), float(doc_len[post_doc[p]]), avgdl, k1, b, delta)
            out_w[p] = w
            if w > ub:
                ub = w
        out_ub[t] = ub


@numba.njit(cache=True, nogil=True, inline="always")
def _lower_bound(post_doc, lo, hi, d):
    """The first position in ``post_doc[lo:hi]`` (ascending) holding ``d`` or more (``hi`` if none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if post_doc[mid] < d:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _find(post_doc, lo, hi, d):
    """Position of passage ``d`` in ``post_doc[lo:hi]`` (ascending), or -1."""
    pos = _lower_bound(post_doc, lo, hi, d)
    if pos < hi and post_doc[pos] == d:
        return pos
    return -1


@numba.njit(cache=True, nogil=True, inline="always")
def _sift_down(heap, i, k):
    """Restore the min-heap property below position i of heap[:k]."""
    while True:
        left = 2 * i + 1
        if left >= k:
            return
        small = left
        if left + 1 < k and heap[left + 1] < heap[left]:
            small = left + 1
        if heap[small] >= heap[i]:
            return
        heap[i], heap[small] = heap[small], heap[i]
        i = small


@numba.njit(cache=True, nogil=True)
def _kth_largest(values, k):
    """The k-th largest value (0.0 if there are fewer than k): a size-k min-heap, one comparison
    for most values (numba's np.partition is several times slower for small k)."""
    n = len(values)
    if n < k or k <= 0:
        return 0.0
    if 8 * k > n:
        return np.partition(values, n - k)[n - k]
    heap = values[:k].copy()
    for start in range(k // 2 - 1, -1, -1):  # heapify
        _sift_down(heap, start, k)
    for j in range(k, n):
        x = values[j]
        if x > heap[0]:
            heap[0] = x
            _sift_down(heap, 0, k)
    return heap[0]


_CHUNK = 1024  # passages per chunk of the score buffer in a heavy question's last pass


@numba.njit(cache=True, nogil=True)
def _top_candidates(
    term_ptr,
    post_doc,
    post_w,
    q_terms,
    q_mult,
    q_ub,
    n_top,
    acc,
    touched,
    fresh,
    doc_day,
    day_lo,
    day_hi,
    use_range,
):
    """Passages that can be among the ``n_top`` best, with their (float32) scores.

    ``q_terms`` are sorted by decreasing upper bound. Returns (docs, scores, n_touched, n_full):
    the first ``n_full`` terms had every posting visited and ``n_touched`` passages contain one
    of them (with ``n_full == len(q_terms)``, the exact number of passages matching the query).
    """
    nq = len(q_terms)
    n = len(acc)
    rem = np.zeros(nq + 1)
    postings = 0
    for i in range(nq - 1, -1, -1):
        rem[i] = rem[i + 1] + q_ub[i] * q_mult[i]
        postings += term_ptr[q_terms[i] + 1] - term_ptr[q_terms[i]]
    # Heavy questions (rows covering a good part of the index): keeping a list of the passages
    # touched costs more than one sequential scan of the score buffer at the end.
    heavy = postings > n // 3
    nt = 0  # passages touched; in heavy mode only a sample of them (from the rarest rows)
    matched = 0  # in heavy mode: the passages touched
    theta = 0.0
    i = 0
    while i < nq:
        if not heavy and nt > n // 16:
            # So many passages touched already that keeping their list costs more than the heavy way: the
            # rows left are added up without it, and the passages listed so far are the sample of the floor.
            heavy = True
            matched = nt
            nt = min(nt, 8192)
        # (heavy questions visit every row: probing long rows for many contenders costs more)
        if not heavy and i > 0 and nt >= n_top and rem[0] - rem[i] >= rem[i]:
            m = min(nt, 8192)  # any subset gives a valid lower bound; the first touched are the likeliest
            vals = np.empty(m, np.float32)
            for j in range(m):
                vals[j] = acc[touched[j]]
            theta = _kth_largest(vals, n_top)
            if rem[i] < theta:
                break
        t = q_terms[i]
        mult = np.float32(q_mult[i])
        start = term_ptr[t]
        end = term_ptr[t + 1]
        if heavy:
            cap = min(8192, n)
            if nt < cap:  # sample the rarest rows' passages: the likeliest best, for a score floor
                for p in range(start, end):
                    if nt == cap:
                        break
                    d = post_doc[p]
                    if acc[d] != 0.0 or (use_range and (doc_day[d] < day_lo or doc_day[d] > day_hi)):
                        continue  # each passage once, so the sample's k-th best bounds the k-th best of all
                    touched[nt] = d
                    nt += 1
            if use_range:
                for p in range(start, end):
                    d = post_doc[p]
                    if doc_day[d] < day_lo or doc_day[d] > day_hi:
                        continue
                    old = acc[d]
                    acc[d] = old + post_w[p] * mult
                    matched += old == 0.0
            else:
                for p in range(start, end):
                    d = post_doc[p]
                    old = acc[d]
                    acc[d] = old + post_w[p] * mult
                    matched += old == 0.0
        elif use_range:
            for p in range(start, end):
                d = post_doc[p]
                if doc_day[d] < day_lo or doc_day[d] > day_hi:
                    continue
                if acc[d] == 0.0:
                    touched[nt] = d
                    nt += 1
                acc[d] += post_w[p] * mult
        else:
            # Two passes: the random-access one has no dependency between postings (so the cache
            # misses overlap); the compaction of first-seen passages then runs at sequential speed.
            length = end - start
            for j in range(length):
                d = post_doc[start + j]
                old = acc[d]
                acc[d] = old + post_w[start + j] * mult
                fresh[j] = old == 0.0
            for j in range(length):
                touched[nt] = post_doc[start + j]  # the buffer has a spare slot
                nt += fresh[j]
        i += 1
    exhaustive = i == nq
    if heavy:
        # Every row was added up (a heavy question never stops early). The floor: the n_top-th best of the
        # sample (distinct passages), which the n_top-th best of all reaches.
        floor = np.float32(0.0)
        if nt >= n_top:
            sample = np.empty(nt, np.float32)
            for c in range(nt):
                sample[c] = acc[touched[c]]
            floor = np.float32(_kth_largest(sample, n_top))
        floor = max(floor, np.float32(1e-30))
        # The contenders: the buffer is read in chunks, each one's largest score found in one tight loop (on
        # the scores' bits: for numbers of one sign their order), and only the chunks holding one are read
        # passage by passage. The buffer is cleared whole at the end.
        bits = acc.view(np.uint32)
        floor_bits = np.array([floor], np.float32).view(np.uint32)[0]
        count = 0
        for lo in range(0, n, _CHUNK):
            top = np.uint32(0)
            for b in bits[lo : lo + _CHUNK]:
                top = max(top, b)
            if top >= floor_bits:
                for d in range(lo, min(lo + _CHUNK, n)):
                    touched[count] = d
                    count += acc[d] >= floor
        cand = touched[:count].copy()
        nt = matched
    elif exhaustive:
        cand = touched[:nt].copy()
    else:
        # The terms left cannot lift an unseen passage above theta: only the passages already seen
        # can still make the top, so the remaining (long) rows are merely probed for them.
        vals = np.empty(nt, np.float32)
        for j in range(nt):
            vals[j] = acc[touched[j]]
        theta = max(theta, _kth_largest(vals, n_top))
        count = 0
        for j in range(nt):
            if vals[j] + rem[i] >= theta:
                count += 1
        cand = np.empty(count, np.int32)
        count = 0
        for j in range(nt):
            if vals[j] + rem[i] >= theta:
                cand[count] = touched[j]
                count += 1
    if not exhaustive:
        is_sorted = False
        for qi in range(i, nq):
            t = q_terms[qi]
            mult = np.float32(q_mult[qi])
            pos = term_ptr[t]
            end = term_ptr[t + 1]
            if len(cand) * 64 >= end - pos:
                # a linear pass is cheaper than probing: add to every passage already seen
                for p in range(pos, end):
                    d = post_doc[p]
                    if acc[d] != 0.0:
                        acc[d] += post_w[p] * mult
            else:
                if not is_sorted:
                    cand.sort()
                    is_sorted = True
                for c in range(len(cand)):
                    d = cand[c]
                    # gallop forward from pos, then binary search
                    step = 1
                    hi = pos
                    while hi < end and post_doc[hi] < d:
                        pos = hi + 1
                        hi = pos + step
                        step <<= 1
                    if hi > end:
                        hi = end
                    pos = _lower_bound(post_doc, pos, hi, d)
                    if pos < end and post_doc[pos] == d:
                        acc[d] += post_w[pos] * mult
            if qi + 1 < nq and len(cand) > n_top:
                vals = np.empty(len(cand), np.float32)
                for c in range(len(cand)):
                    vals[c] = acc[cand[c]]
                theta = max(theta, _kth_largest(vals, n_top))
                keep = 0
                for c in range(len(cand)):
                    if vals[c] + rem[qi + 1] >= theta:
                        cand[keep] = cand[c]
                        keep += 1
                cand = cand[:keep]
    # top n_top of the candidates, best first (ties: lower passage number first)
    m = len(cand)
    if m > 4 * n_top and m > 8192:
        # the k-th best of a sample bounds the k-th best of all from below: filter, then select
        sample = np.empty(8192, np.float32)
        for c in range(8192):
            sample[c] = acc[cand[c]]
        floor = _kth_largest(sample, n_top)
        keep = 0
        for c in range(m):
            if acc[cand[c]] >= floor:
                cand[keep] = cand[c]
                keep += 1
        m = keep
    scores = np.empty(m, np.float32)
    for c in range(m):
        scores[c] = acc[cand[c]]
    cand = cand[:m]
    if m > n_top:
        cut = _kth_largest(scores, n_top)
        keep = 0
        for c in range(m):
            if scores[c] >= cut:
                cand[keep] = cand[c]
                scores[keep] = scores[c]
                keep += 1
        cand = cand[:keep]
        scores = scores[:keep]
    order = np.argsort(-scores, kind="mergesort")
    out_docs = cand[order]
    out_scores = scores[order]
    if heavy:
        acc[:] = 0.0
    else:
        for j in range(nt):
            acc[touched[j]] = 0.0
    return out_docs, out_scores, nt, i


@numba.njit(cache=True, nogil=True)
def _rescore(code, term_ptr, post_doc, post_tf, idf, doc_len, avgdl, k1, b, delta, q_terms, q_mult, docs):
    """Exact float64 scores (without the constant BM25Plus part) and the summed positive idf of
    the matched terms."""
    n = len(docs)
    scores = np.zeros(n)
    covered = np.zeros(n)
    for c in range(n):
        d = docs[c]
        s = 0.0
        cov = 0.0
        for qi in range(len(q_terms)):
            t = q_terms[qi]
            p = _find(post_doc, term_ptr[t], term_ptr[t + 1], d)
            if p >= 0:
                s += q_mult[qi] * _weight(
                    code, idf[t], float(post_tf[p]), float(doc_len[d]), avgdl, k1, b, delta
                )
                if idf[t] > 0:
                    cov += idf[t]
        scores[c] = s
        covered[c] = cov
    return scores, covered


@numba.njit(cache=True, nogil=True)
def _search_kernel(
    code,
    term_ptr,
    post_doc,
    post_w,
    post_tf,
    idf,
    doc_len,
    avgdl,
    k1,
    b,
    delta,
    q_terms,
    q_mult,
    q_ub,
    n_top,
    acc,
    touched,
    fresh,
    doc_day,
    day_lo,
    day_hi,
    use_range,
):
    """Candidates, their exact scores and covered idf, the touched count and exhaustiveness."""
    docs, _, nt, n_full = _top_candidates(
        term_ptr,
        post_doc,
        post_w,
        q_terms,
        q_mult,
        q_ub,
        n_top,
        acc,
        touched,
        fresh,
        doc_day,
        day_lo,
        day_hi,
        use_range,
    )
    exact, covered = _rescore(
        code, term_ptr, post_doc, post_tf, idf, doc_len, avgdl, k1, b, delta, q_terms, q_mult, docs
    )
    return docs, exact, covered, nt, n_full


@numba.njit(cache=True, nogil=True)
def _terms_held(term_ptr, post_doc, terms, doc_ptr, doc_order, articles):
    """Whether each of ``articles`` holds each of ``terms`` (term numbers) in one of its passages (article
    ``a``'s passages are ``doc_order[doc_ptr[a]:doc_ptr[a + 1]]``): a boolean array, terms by articles."""
    out = np.zeros((len(terms), len(articles)), np.bool_)
    for i in range(len(terms)):
        lo = term_ptr[terms[i]]
        hi = term_ptr[terms[i] + 1]
        for j in range(len(articles)):
            a = articles[j]
            for k in range(doc_ptr[a], doc_ptr[a + 1]):
                if _find(post_doc, lo, hi, doc_order[k]) >= 0:
                    out[i, j] = True
                    break
    return out


@numba.njit(cache=True, nogil=True)
def _find_term(blob, offsets, key):
    """Index of ``key`` (UTF-8 bytes) in the sorted term table, or -1."""
    lo = 0
    hi = len(offsets) - 1
    nk = len(key)
    while lo < hi:
        mid = (lo + hi) >> 1
        s = offsets[mid]
        e = offsets[mid + 1]
        n = e - s
        cmp = 0
        for j in range(min(n, nk)):
            x = blob[s + j]
            y = key[j]
            if x != y:
                cmp = -1 if x < y else 1
                break
        if cmp == 0 and n != nk:
            cmp = -1 if n < nk else 1
        if cmp == 0:
            return mid
        if cmp < 0:
            lo = mid + 1
        else:
            hi = mid
    return -1


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
