module switchyard/dispatcher

go 1.19

require github.com/gammazero/nexus/v3 v3.2.2
