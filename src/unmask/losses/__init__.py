"""unmask.losses: HSIC estimators and the DSID objective."""

from unmask.losses.hsic import hsic
from unmask.losses.objective import DSIDObjective

__all__ = ["DSIDObjective", "hsic"]
