"""What curators do with labels: review, the suspicion queue, probes learned from their fixes."""
