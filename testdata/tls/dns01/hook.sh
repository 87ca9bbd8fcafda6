#!/bin/sh
# Test fixture: a DNS hook that does nothing.
exit 0
