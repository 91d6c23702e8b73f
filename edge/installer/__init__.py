"""What an installer runs on a node before and after it goes up the pole: ``pingan-edge install`` and
``pingan-edge doctor``. Nothing here runs inside the agent; it only reads the config the agent will use.
"""
