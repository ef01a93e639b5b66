#!/bin/bash
./helper.sh &
exec python3 legacy.py
