"""The learning spam filter: tokens.py (a message as features), bayes.py (the classifier), rules.py,
dnsbl.py (DNS blocklists), models.py (models in memory over the store), check.py (the pipeline check),
learn.py (training from what users do in IMAP). See docs/spam.md."""
