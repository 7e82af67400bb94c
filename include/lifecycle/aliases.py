"""The registry aliases of a model's lifecycle, and the prediction log's arms."""

CHALLENGER, CHAMPION, PREVIOUS = "challenger", "champion", "previous_champion"
CANARY = "canary"  # the version a configured share of live traffic goes to
SHADOW = "shadow"  # the prediction log's arm for the challenger's scores, never returned to a caller
FALLBACK = "fallback"  # the arm of the previous champion answering when the champion failed to score
