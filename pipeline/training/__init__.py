"""Training: the DataModule, the LightningModule, the LightningCLI and what drives fit runs
(budget, cross-validation, tuning, baselines) and reports them."""
