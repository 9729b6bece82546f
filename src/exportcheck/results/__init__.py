"""What every stage returns: findings, comparisons and the Report that holds them."""
