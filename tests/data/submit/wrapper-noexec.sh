#!/bin/bash
# Issue 13.2: the last command is not exec'ed; bash dies from the job signal sent to the group.
./helper.sh &
python3 legacy.py
