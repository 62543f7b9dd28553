* Axon-Hillock integrate-and-fire neuron (after C. Mead, "Analog VLSI and Neural Systems",
* Addison-Wesley 1989, ch. 12), written for neurospice's generic 0.18 um level-1 models
* (gnmos / gpmos; sizes in metres).
*   in    membrane: the input current charges Cmem and the feedback capacitor Cfb
*   out   spike: two inverters in series; Cfb couples out back onto the membrane (positive
*         feedback: a clean, fast spike)
*   vpw   gate bias of the reset path: sets the discharge current, so the spike width
*   vleak gate bias of the leak transistor (a constant-current leak above ~0.1 V)
.subckt axon_hillock in out vdd vpw vleak gnd
Cmem in gnd 100f
Cfb out in 100f
M1p n1 in vdd vdd gpmos w=1.5u l=0.18u
M1n n1 in gnd gnd gnmos w=0.5u l=0.18u
M2p out n1 vdd vdd gpmos w=1.5u l=0.18u
M2n out n1 gnd gnd gnmos w=0.5u l=0.18u
Mr1 in out r gnd gnmos w=1u l=0.18u
Mr2 r vpw gnd gnd gnmos w=1u l=0.18u
Ml in vleak gnd gnd gnmos w=0.5u l=2u
.ends axon_hillock
