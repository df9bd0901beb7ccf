"""The compiled inner loop of choosing a quote (numba, cached on disk like the index's kernels): every window of
neighbouring sentences that may be quoted, with its score for each answer-type bonus it can get.

A question's quotes look at about a dozen windows each, several quotes a question; scored in the interpreter,
that loop was the largest part of choosing a quote. ``retrieval.quote`` prepares the sentences as arrays and
keeps the part that must stay in Python (whether a sentence holds an answer of the wanted type).
"""

from pathlib import Path

from retrieval.numba_cache import choose_cache_dir

choose_cache_dir(Path(__file__).parent)

import numba  # noqa: E402  (after the cache folder is chosen)
import numpy as np  # noqa: E402


@numba.njit(cache=True, nogil=True)
def window_score(held, bonus, cost, in_lead, follows, away, elsewhere, lead_bonus, leave_passage):
    """A window's score: the share of the question's weight it holds, ``bonus`` for the answer it holds, less
    its cost (length), plus ``lead_bonus`` in the article's first passage and a little when the answer follows
    the sentence that matches; less ``away`` from the passages found, and half ``leave_passage`` when it is
    not in the best passage found."""
    score = held + bonus
    score -= cost
    if in_lead:
        score += lead_bonus  # news puts the main facts first
    if follows:
        score += 0.02  # the answer tends to follow the sentence that matches the question
    if away:
        score -= away
    if elsewhere:
        score -= leave_passage / 2  # prefer the best passage found
    return score


@numba.njit(cache=True, nogil=True)
def _weight_held(held_terms, weights):
    """The weight of the terms marked in ``held_terms``, summed in the terms' order."""
    total = 0.0
    for t in range(len(weights)):
        if held_terms[t]:
            total += weights[t]
    return total


@numba.njit(cache=True, nogil=True)
def windows_kernel(
    facts,
    n,
    n_terms,
    n_found,
    weights,
    max_chars,
    max_sentences,
    bonus,
    weak,
    focus,
    per_sentence,
    leave_passage,
    per_passage,
    lead_bonus,
):
    """Every window of one to ``max_sentences`` neighbouring sentences that may be quoted, in order (by its
    first sentence, then its length).

    ``facts`` (one array, so that a call converts one list): the ``n`` sentences' passages, then their lengths
    with the space after each, then for each of the ``n_terms`` terms (in the order of ``weights``) whether it
    is one of the question's own words, then the ``n_found`` passages the search found (best first), then
    pairs (sentence, term): which sentence holds which term. Returns each window's first and last sentence,
    its score with no answer-type bonus, with ``weak`` of ``bonus`` and with all of it (``window_score``), and
    the windows' order from the highest score they could reach (all the bonus) down, ties in window order."""
    ordinals = facts[:n]
    lengths = facts[n : 2 * n]
    own = facts[2 * n : 2 * n + n_terms]
    found = facts[2 * n + n_terms : 2 * n + n_terms + n_found]
    pairs = facts[2 * n + n_terms + n_found :]
    terms_of = np.zeros((n, n_terms), dtype=np.bool_)
    for m in range(0, len(pairs) - 1, 2):
        terms_of[pairs[m], pairs[m + 1]] = True
    total = 0.0
    for t in range(n_terms):
        total += weights[t]
    if total == 0.0:
        total = 1.0
    cover = np.empty(n)
    owns = np.zeros(n, dtype=np.bool_)
    has_own = False
    for t in range(n_terms):
        if own[t] != 0:
            has_own = True
    for i in range(n):
        cover[i] = _weight_held(terms_of[i], weights) / total
        for t in range(n_terms):
            if terms_of[i, t] and own[t] != 0:
                owns[i] = True
    in_found = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        for c in found:
            if ordinals[i] == c:
                in_found[i] = True
    best_found = found[0]
    longest = max_chars * 1.5
    # The first sentence from each one on that holds one of the question's own words (n: none does).
    next_own = np.full(n + 1, n, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        next_own[i] = i if owns[i] else next_own[i + 1]
    size = n * max_sentences
    first = np.empty(size, dtype=np.int64)
    last = np.empty(size, dtype=np.int64)
    plain = np.empty(size)
    weak_score = np.empty(size)
    full = np.empty(size)
    covered = np.zeros(n_terms, dtype=np.bool_)
    count = 0
    for i in range(n):
        if has_own and next_own[i] >= i + max_sentences:
            continue  # a window must hold one of the question's own words: none from here does
        start_ordinal = ordinals[i]
        first_cover = cover[i]
        covered[:] = False
        touches = False
        holds_own = False
        length = -1
        top_cover = -1.0
        away_from_found = -1.0
        previous = start_ordinal
        for j in range(i, min(i + max_sentences, n)):
            ordinal = ordinals[j]
            if j > i:
                if ordinal - previous > 1:
                    break  # not neighbours
                length += lengths[j]
                if length > longest:
                    break
            else:
                length += lengths[j]
            previous = ordinal
            for t in range(n_terms):
                if terms_of[j, t]:
                    covered[t] = True
            touches = touches or in_found[j]
            holds_own = holds_own or owns[j]
            if cover[j] > top_cover:
                top_cover = cover[j]
            if has_own and not holds_own:
                continue  # a window must hold one of the question's own words
            # Focus: the best sentence's share counts most, the window's union of terms less.
            held = focus * top_cover + (1 - focus) * _weight_held(covered, weights) / total
            cost = per_sentence * (j - i) + (0.1 if length > max_chars else 0.0)
            away = 0.0
            if not touches:
                if away_from_found < 0.0:
                    distance = abs(start_ordinal - found[0])
                    for c in found:
                        distance = min(distance, abs(start_ordinal - c))
                    away_from_found = leave_passage + per_passage * min(distance - 1, 5)
                away = away_from_found
            in_lead = start_ordinal == 0  # the article's first passage
            follows = first_cover >= top_cover and j > i
            elsewhere = start_ordinal != best_found and ordinal != best_found
            first[count] = i
            last[count] = j
            plain[count] = window_score(
                held, bonus * 0.0, cost, in_lead, follows, away, elsewhere, lead_bonus, leave_passage
            )
            weak_score[count] = window_score(
                held, bonus * weak, cost, in_lead, follows, away, elsewhere, lead_bonus, leave_passage
            )
            full[count] = window_score(
                held, bonus * 1.0, cost, in_lead, follows, away, elsewhere, lead_bonus, leave_passage
            )
            count += 1
    full = full[:count]
    order = np.argsort(-full, kind="mergesort")  # stable: equal scores stay in window order
    return first[:count], last[:count], plain[:count], weak_score[:count], full, order
