"""The platforms' shared request budgets (supabase/migrations/*rate_limit*): every worker draws on one budget
per platform, so a sync never spends what regular polling needs."""

# Take one request from (platform)'s budget for (class): 'interactive' (polls, webhooks) or 'bulk' (backfill,
# details: it leaves a fifth of every window to the interactive class). Null when granted, else the time the
# window resets. Parameters: platform, class.
TAKE_RATE_LIMIT = "select trove_private.take_rate_limit(%s, %s)"

# Record what the platform said of a window after a call (its limit and usage), which the budget follows.
# Parameters: platform, window name, window length, limit, used.
RECORD_RATE_LIMIT = "select trove_private.record_rate_limit(%s, %s, %s, %s, %s)"
