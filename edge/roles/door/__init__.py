"""The rental block's fingerprint door, in three parts that change for different reasons.

``lock`` is the state machine the building's safety depends on (relay, contacts, fire input, the
reader's verdicts); ``access`` is the centre's management of who may enter (enrol, revoke, sync,
synced templates); ``access_list`` is the list itself on the node's disk, which the lock reads.
"""
