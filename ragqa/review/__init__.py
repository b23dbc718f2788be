"""A person in the loop: the question log (log.py), reviews, and the hand-off of withheld
questions to a person. Above answer/ and index/, below the facade."""
