"""The one exception type users see: a single line naming the file or param and the problem."""


class Sam4irError(Exception):
    """Bad input (file, param, checkpoint) described in one line; stages print it and exit 1."""
