"""The bottom layer of `pipeline`: the user error, processes and ranks, progress, figures, and
the dependencies' noise it hides."""
