set terminal svg size 720,420 dynamic font "sans,11"
set output "latency-vs-load.svg"
set title "Latency against offered load (100 clients, 10 senders)"
set xlabel "messages/s offered"
set ylabel "latency (ms)"
set grid
set key top left
set logscale y
plot "latency-vs-load-before_p50.dat" using 1:2 with linespoints title "before p50", \
     "latency-vs-load-before_p99.dat" using 1:2 with linespoints title "before p99", \
     "latency-vs-load-palaver_p50.dat" using 1:2 with linespoints title "palaver p50", \
     "latency-vs-load-palaver_p99.dat" using 1:2 with linespoints title "palaver p99", \
     "latency-vs-load-uws_p50.dat" using 1:2 with linespoints title "uws p50", \
     "latency-vs-load-uws_p99.dat" using 1:2 with linespoints title "uws p99", \
     "latency-vs-load-reference_p50.dat" using 1:2 with linespoints title "reference p50", \
     "latency-vs-load-reference_p99.dat" using 1:2 with linespoints title "reference p99"
